"""Source of masthead/publishing/demo/articles.jsonl: the demo's articles, written by the team.

Every name, place and event here is invented. Run this script to rewrite the JSONL file.
"""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "masthead/publishing/demo/articles.jsonl"

A = []


def art(**kw):
    A.append(kw)


art(
    external_id="demo-001", section="News", language="en", age_hours=3,
    headline="Night ferry to Kessel Island cancelled as river ice arrives early",
    standfirst="The last crossing of the season left two weeks ahead of schedule, stranding "
    "forty residents on the mainland.",
    authors=["Mira Castellan"], tags=["transport", "winter"],
    image=("river-night", "The ferry landing at Orlin Quay after the final crossing.",
           "Tomas Reyne", "CC BY 2.0"),
    body="""<p>The harbour authority cancelled the night ferry to Kessel Island on Tuesday after
floating ice closed the eastern channel, ending the season two weeks earlier than in any year
since records began at the quay.</p>
<p>About forty island residents who had crossed for work or hospital appointments were told to
find lodging in Orlin until a hovercraft service starts, which the authority says could take ten
days.</p>
<h2>Residents ask for an emergency link</h2>
<p>“We were given four hours' notice,” said Ilse Varro, who runs the island's only shop. “Half of
us have animals waiting at home.”</p>
<blockquote><p>We cannot send a vessel into ice we cannot see.
The decision was about lives.</p></blockquote>
<p>The authority's duty officer said the timetable would be reviewed next year and that a
helicopter is available for medical emergencies.</p>""",
)
art(
    external_id="demo-002", section="News", language="en", age_hours=20,
    headline="City council votes to publish every contract over 10,000 crowns",
    standfirst="After a year of requests from reporters, the council agreed to put its "
    "procurement register online within three months.",
    authors=["Jonah Adebayo", "Mira Castellan"], tags=["council", "transparency"],
    image=("council-hall", "Councillors leave the chamber after Thursday's vote.",
           "Lena Oduya", "CC BY-SA 4.0"),
    body="""<p>Orlin's city council voted 31 to 9 on Thursday to publish every contract worth more
than 10,000 crowns, including the names of bidders who lost.</p>
<p>The motion followed a series of reports in <em>The Lantern</em> showing that road repairs had
been awarded repeatedly to two firms without open tender.</p>
<h2>What changes</h2>
<ul><li>Contracts appear online within 30 days of signature.</li>
<li>Amendments worth more than a tenth of the original value are published too.</li>
<li>Redactions must cite the clause of the law that allows them.</li></ul>
<p>Opponents said the register would cost too much to maintain. The finance department put the
cost at one part-time post.</p>""",
)
art(
    external_id="demo-003", section="News", language="en", age_hours=30,
    headline="Printers' cooperative saves the last letterpress in the old town",
    standfirst="Forty-two members bought the 1920s machine at auction and will run it as a "
    "working museum.",
    authors=["Petra Lind"], tags=["culture", "old town"],
    image=("printing-press", "The press being moved to its new workshop on Tanner Street.",
           "Petra Lind", "CC0 1.0"),
    body="""<p>A cooperative of retired typesetters and art students has bought the old town's
last working letterpress, outbidding a collector who planned to ship it abroad.</p>
<p>The members raised the money in six weeks, mostly in small amounts. The press will print
posters for local events and run weekend classes.</p>
<p>“A newspaper was printed on this machine during the strike of 1931,” said Arvo Keln, the
cooperative's chair. “It belongs here.”</p>""",
)
art(
    external_id="demo-004", section="News", language="en", age_hours=50,
    headline="Tram line 4 to run all night from December",
    standfirst="The transit company will test a 30-minute night service between the depot "
    "and the university for three months.",
    authors=["Jonah Adebayo"], tags=["transport"],
    image=("tram-depot", "Trams at the Northgate depot before the morning shift.",
           "Sami Hart", "All rights reserved"),
    body="""<p>Line 4 will run through the night from the first weekend of December, the transit
company said, after a petition from hospital and bakery workers gathered 6,000 signatures.</p>
<p>Trams will leave every 30 minutes between midnight and five in the morning. The trial will
be judged on passenger numbers in February.</p>""",
)
art(
    external_id="demo-005", section="Features", language="en", age_hours=8,
    headline="The orchard that outlived three borders",
    standfirst="For a century the Halloran family has picked apples on land that has "
    "belonged to three different countries. This autumn they picked them again.",
    authors=["Ana Sorel"], tags=["history", "land"],
    image=("orchard", "The oldest trees in the Halloran orchard were planted in 1911.",
           "Ana Sorel", "CC BY 4.0"),
    body="""<p>The oldest tree in the Halloran orchard was planted the year the railway arrived.
Since then the border has moved across the valley three times; the trees have stayed put.</p>
<p>Magda Halloran, 81, keeps the deeds from every government in a biscuit tin. “Each one
says the same thing in a different language,” she said. “That the apples are ours.”</p>
<h2>A harvest in numbers</h2>
<p>This year the family picked eleven tonnes, most of it sold at the Saturday market in Orlin.
The rest becomes cider, pressed in a barn that still has a customs post's sign on its door.</p>
<blockquote><p>Borders are for maps. Trees are for people.</p></blockquote>
<p>Her grandson, who studies agronomy, plans to graft new trees from the old ones
next spring.</p>""",
)
art(
    external_id="demo-006", section="Features", language="en", age_hours=70,
    headline="Inside the harbour's volunteer rescue crew",
    standfirst="Twelve volunteers, one boat and a pager: how Orlin's rescue crew answered 140 "
    "calls this year.",
    authors=["Mira Castellan"], tags=["harbour", "volunteers"],
    image=("harbour", "The rescue boat returning from a night exercise.",
           "Tomas Reyne", "CC BY 2.0"),
    body="""<p>When the pager goes off, Dana Morrow has seven minutes to reach the boathouse. She
has made it every time this year, including once from a wedding.</p>
<p>The crew is funded by donations and a small grant from the port. Its boat is 19 years old.</p>
<h2>Training in the dark</h2>
<p>Every Wednesday the crew practises in the harbour after sunset, because most real calls come
at night.</p>""",
)
art(
    external_id="demo-007", section="Features", language="en", age_hours=100,
    headline="A library that lends tools, seeds and winter coats",
    standfirst="The branch library in Eastfield has quietly become the neighbourhood's "
    "storeroom. Its librarians say it is what a library is for.",
    authors=["Petra Lind"], tags=["libraries", "community"],
    image=("library", "Shelves of lendable tools at the Eastfield branch.",
           "Lena Oduya", "CC BY-SA 4.0"),
    body="""<p>Next to the crime novels at the Eastfield branch library there is a shelf of
drills. Next to the atlases: seed packets, sorted by month.</p>
<p>The branch began lending tools in 2019. Since then it has added sewing machines, camping
stoves and, every November, donated winter coats in all sizes.</p>""",
)
art(
    external_id="demo-008", section="Features", language="en", age_hours=140,
    headline="Why the radio mast on Signal Hill still matters",
    standfirst="When the internet goes down, the old mast is how the valley hears the news.",
    authors=["Jonah Adebayo"], tags=["media", "infrastructure"],
    image=("radio-mast", "The mast on Signal Hill at dusk.",
           "Sami Hart", "Public domain"),
    body="""<p>The radio mast on Signal Hill was due to be demolished in 2015. Then a storm took
down the fibre line for nine days, and the local station was the only source of news.</p>
<p>Today a volunteer association maintains the mast, and the station broadcasts a news bulletin
every hour, read from the newsroom's website.</p>""",
)
art(
    external_id="demo-009", section="Новости", language="ru", age_hours=4,
    translation_of="demo-001",
    headline="Ночной паром на остров Кессель отменён: лёд пришёл раньше срока",
    standfirst="Последний рейс сезона ушёл на две недели раньше графика, сорок жителей "
    "остались на материке.",
    authors=["Mira Castellan"], tags=["транспорт", "зима"],
    image=("river-night", "Причал Орлин после последнего рейса.", "Tomas Reyne", "CC BY 2.0"),
    body="""<p>Портовая администрация во вторник отменила ночной паром на остров Кессель:
дрейфующий лёд закрыл восточный фарватер. Сезон закончился на две недели раньше, чем когда-либо
с начала наблюдений.</p>
<p>Около сорока жителей острова, приехавших на работу или к врачу, должны искать жильё в Орлине,
пока не начнёт ходить судно на воздушной подушке.</p>
<h2>Жители просят экстренное сообщение</h2>
<p>«Нас предупредили за четыре часа», — говорит Ильзе Варро, хозяйка единственного магазина на
острове.</p>""",
)
art(
    external_id="demo-010", section="Новости", language="ru", age_hours=22,
    translation_of="demo-002",
    headline="Городской совет будет публиковать все контракты дороже 10 000 крон",
    standfirst="После года запросов журналистов совет согласился выложить реестр закупок "
    "в течение трёх месяцев.",
    authors=["Jonah Adebayo", "Mira Castellan"], tags=["совет", "прозрачность"],
    image=("council-hall", "Депутаты покидают зал после голосования в четверг.",
           "Lena Oduya", "CC BY-SA 4.0"),
    body="""<p>Городской совет Орлина в четверг 31 голосом против 9 решил публиковать каждый
контракт дороже 10 000 крон, включая имена проигравших участников торгов.</p>
<p>Решение последовало за серией публикаций «Фонаря» о том, что ремонт дорог раз за разом
доставался двум фирмам без открытого конкурса.</p>""",
)
art(
    external_id="demo-011", section="Новости", language="ru", age_hours=60,
    headline="В Восточном районе открылся пункт обогрева",
    standfirst="Волонтёры и библиотека Истфилда будут принимать всех желающих до конца "
    "морозов.",
    authors=["Petra Lind"], tags=["зима", "волонтёры"],
    image=("snowfield", "Заснеженный двор у библиотеки Истфилда.", "Ana Sorel", "CC0 1.0"),
    body="""<p>В библиотеке Истфилда открылся пункт обогрева: здесь можно выпить горячего чая,
зарядить телефон и взять тёплую одежду.</p>
<p>Пункт работает ежедневно с восьми утра до десяти вечера.</p>""",
)

with OUT.open("w", encoding="utf-8") as f:
    for a in A:
        name, caption, credit, licence = a.pop("image")
        a["lead_image"] = {"path": f"images/{name}.jpg", "caption": caption, "credit": credit,
                           "licence": licence}
        a["body"] = " ".join(a["body"].split("\n"))
        f.write(json.dumps(a, ensure_ascii=False) + "\n")
print(f"{len(A)} articles written to {OUT}")
